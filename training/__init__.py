"""Training by cross-validation and the synthetic phantom generator."""
