"""The trainer: a policy-gradient update over a train set, through Accelerate.

The same code runs on one CPU, one GPU, or several processes and nodes under ``accelerate
launch`` (docs/training.md): the Accelerator takes the launch configuration, while what changes
results (mixed precision, batch sizes, seed) comes from ``params.yaml`` only.
``optimize.minibatch_size`` sequences make one optimizer step whatever the process count: each
process takes its share of the minibatch in micro-batches of ``optimize.micro_batch_size`` and
the gradients accumulate, with the loss normalised by the whole minibatch's token (or sequence)
count, so one process and several compute the same update.

Phases of :func:`rlint.trainer.loop.train`:

1. **measure** before any update: the trainer's log-probabilities of the sampled tokens against
   the sampler's (``logprob_mismatch``, ``logprob_mismatch_max``), and the reference policy's
   (base policy ``checkpoints/round=0``, loaded once) when the KL penalty is on;
2. **update**: for each minibatch of each epoch, the loss of rlint/losses.py (policy loss by
   name, KL, supervised term), gradient clipping, AdamW, the learning-rate schedule;
3. **summarise** the steps into the round's metrics.

The old policy of the ratio is the sampler's log-probabilities (one set per sample), or, with
``optimize.old_logprobs: recompute``, the trainer's own from the measuring forward pass (as TRL's
GRPOTrainer does). ``optimize.reshuffle_epochs: false`` keeps one minibatch order for every epoch
(TRL's), and ``optimize.carry_optimizer_state`` starts AdamW from the state the previous round
stored in its checkpoint (rlint/optimizer_state.py) instead of from zero.

Modules: :mod:`~rlint.trainer.batches` (rows to padded tensors), :mod:`~rlint.trainer.plan`
(which rows each step sees, the learning-rate schedule, whether there is signal at all),
:mod:`~rlint.trainer.loop` (measure, update, summarise), :mod:`~rlint.trainer.checkpoint` (the
checkpoint a round writes). The stage that reads and writes is rlint/stages/optimize.py.
"""
