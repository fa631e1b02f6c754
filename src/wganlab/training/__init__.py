"""Training: the loop, the critic and generator updates, how a step runs (eager, graph, DDP)."""
