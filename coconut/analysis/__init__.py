"""Looking inside the thoughts: latent-search analysis, decoding and stopping comparisons (`coconut analyze`)."""
