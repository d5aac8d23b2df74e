"""Noise-aware multi-objective evolutionary search: genome, operators, NSGA-II, Optuna study."""
