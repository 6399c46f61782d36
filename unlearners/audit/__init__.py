"""The privacy audit beyond the paper (issue 16): membership inference, forget quality, relearning."""
