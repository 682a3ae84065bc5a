"""The latent engine: plain torch + transformers, no Lightning and no data code (imports only the config pieces)."""
