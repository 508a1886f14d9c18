"""NeuralRP context package."""
