"""NeuralRP images package."""
