"""NeuralRP retrieval package."""
