"""Settings package of the example project: base, dev and test."""
