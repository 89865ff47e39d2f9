"""Work of the data stages as Ray tasks, on a local Ray instance or an existing cluster: `prepare`'s per-input
phase and `tokenize`'s per-file encoding run there, and the results come back to this process, which
merges them exactly as it merges the results of --workers processes (so the output is the same).
Ray is an optional extra: without it, --executor ray is refused with the install line."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from lmforge.errors import InputError

EXECUTORS = ("local", "ray")


def check_ray(address: str | None) -> None:
    """Before anything is read or written: Ray is installed and the cluster at `address` answers."""
    require_ray()
    if address and address != "auto":
        _check_reachable(address)


def require_ray():
    try:
        import ray
    except ImportError:
        raise InputError("--executor ray needs Ray: pip install 'lmforge[ray]' (or pip install 'ray[default]'), "
                         "or use --workers N on this machine.") from None
    return ray


def _start(address: str | None, cpus: int | None):
    """Join the cluster at `address` ("auto": the one this machine belongs to), or start a local instance
    with `cpus` CPUs (None: all of them)."""
    ray = require_ray()
    if ray.is_initialized():
        return ray
    # lmforge must be installed where the workers run (a cluster's nodes); no runtime_env is shipped, which
    # would cost seconds of environment set-up per worker pool
    kwargs = {"include_dashboard": False, "log_to_driver": False}
    try:
        if address:
            ray.init(address=address, **kwargs)
        else:
            ray.init(num_cpus=cpus, **kwargs)
    except (ConnectionError, RuntimeError) as error:
        where = f"the Ray cluster at {address!r}" if address else "a local Ray instance"
        raise InputError(f"could not start or reach {where} ({str(error).splitlines()[0][:160]}); check "
                         "--ray-address, or drop it to start a local one.") from None
    return ray


def _check_reachable(address: str, seconds: float = 5.0) -> None:
    """Refuse at once a HOST:PORT nobody listens on (Ray itself retries for minutes)."""
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=seconds).close()
    except ValueError:
        raise InputError(f"--ray-address {address!r}: expected HOST:PORT (or auto).") from None
    except OSError as error:
        raise InputError(f"--ray-address {address}: nothing answers there ({error.strerror or error}); start the "
                         "cluster (`ray start --head`) or pass its address, or drop --ray-address.") from None


def ray_map(function: Callable, jobs: Iterable, address: str | None = None, cpus: int | None = None) -> Iterator:
    """function(job) for every job as Ray tasks; results in the order the tasks finish. Errors raised in a
    task are raised here (an InputError as itself, so it stays a one-line message)."""
    ray = _start(address, cpus)
    remote = ray.remote(function)
    pending = [remote.remote(job) for job in jobs]
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        try:
            yield ray.get(done[0])
        except ray.exceptions.RayTaskError as error:
            cause = error.as_instanceof_cause()
            if isinstance(cause, InputError):
                raise InputError(str(cause).splitlines()[0]) from None
            raise
