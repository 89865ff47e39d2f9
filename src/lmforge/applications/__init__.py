"""Applications: fine-tuning runs end to end (finetune, evaluate, predict, prune), composed from the task
data (tasks/), the one training loop (training/) and model loading (inference/); what the finetune,
predict, prune and eval verbs share, callable from a notebook."""
