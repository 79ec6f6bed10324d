"""A request's life: states, the state machine, the apply, policy, and what follows each
transition."""
