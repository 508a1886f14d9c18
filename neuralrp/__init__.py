"""NeuralRP: a local roleplay engine that keeps small models coherent."""

__version__ = "0.1.0"
