"""The building blocks of every model: networks (encoders and decoders), the latent distributions and
priors with their formulas, and the likelihoods p(x|z). Torch only; nothing here knows a model's name."""
