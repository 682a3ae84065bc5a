"""Looking inside the thoughts (`coconut analyze`) and the paper's Table 1 from run folders (`coconut report`)."""
