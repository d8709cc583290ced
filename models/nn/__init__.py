"""Networks: event embedding, encoders (Transformer, LSTM/GRU), heads, vocabulary, the blend."""
