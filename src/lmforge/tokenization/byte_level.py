"""The GPT-2 byte <-> printable-unicode table used by byte-level BPE vocabularies."""

from functools import cache


@cache
def bytes_to_unicode() -> dict[int, str]:
    """Every byte maps to a printable character; printable Latin-1 bytes map to themselves."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    chars = list(printable)
    shift = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + shift)
            shift += 1
    return {byte: chr(char) for byte, char in zip(printable, chars)}


@cache
def unicode_to_bytes() -> dict[str, int]:
    return {char: byte for byte, char in bytes_to_unicode().items()}


def token_to_bytes(token: str) -> bytes:
    """The raw bytes behind a byte-level vocabulary entry such as 'Ġthe'."""
    table = unicode_to_bytes()
    return bytes(table[char] for char in token)
