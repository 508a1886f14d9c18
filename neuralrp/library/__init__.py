"""NeuralRP library package."""
