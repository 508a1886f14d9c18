"""Card generation: PList character cards from a description or a chat, and world lore from a setting."""
