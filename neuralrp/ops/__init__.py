"""NeuralRP ops package."""
