"""NeuralRP llm package."""
