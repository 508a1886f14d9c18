"""NeuralRP db package."""
