"""NeuralRP api package."""
