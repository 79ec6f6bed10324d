"""Fast direct tests of the pure layers: parsers, validators, builders, policy, workflow."""
