"""The Trainer side: arguments, trainer, callbacks, metrics, calibration, reports. Never needed to load a model."""
