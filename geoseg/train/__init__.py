"""Training: labelled regions -> scale-jittered chips -> fitted weights + model card."""
