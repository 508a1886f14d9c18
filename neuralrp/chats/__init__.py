"""NeuralRP chats package."""
