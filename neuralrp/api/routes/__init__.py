"""NeuralRP api routes package."""
