"""`coconut bench`: the latent engine against a plain model of the same shape."""
