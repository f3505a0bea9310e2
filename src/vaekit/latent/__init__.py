"""The latent-space toolkit: reconstructions, samples, interpolations, traversals, maps, arithmetic, denoising.

Functions take a loaded model (``vaekit.load(run)``) and NumPy images ``(N, *sample_shape)`` in
[0, 1], and return NumPy arrays or small result dataclasses; :mod:`vaekit.figures.plots` turns those into
figures. Codes are posterior means E[z|x] (the code itself for a plain autoencoder).

Modules, each a single concern:

* ``codes`` -- encode, decode (images clipped to [0, 1]; tables in original units by ``decode_values``),
  reconstruct, KL per dimension, index checks;
* ``paths`` -- linear and spherical interpolation, bilinear grids, traversals (pure NumPy);
* ``sampling`` -- the prior and a Gaussian mixture fitted to the encoded training data;
* ``projection`` -- PCA / t-SNE maps and the decoded grid of a 2-D latent space;
* ``arithmetic`` -- attribute vectors from classes; ``attributes`` -- from a CSV or CelebA table;
* ``noise`` -- corruptions and PSNR; ``operations`` -- one function per ``vaekit`` latent command.

Example::

    import vaekit
    from vaekit import latent

    model, data = latent.load_model_and_data("runs/fashion-mnist-vae")
    recon = latent.reconstruct(model, data.test.x[:10])
    path = latent.decode_images(model, latent.slerp(*latent.encode_means(model, data.test.x[:2]), steps=8))
"""
from vaekit.latent.arithmetic import (DEFAULT_ALPHAS, attribute_vector, class_vector, images_not_of, parse_alphas, resolve_class,
                         shift_codes)
from vaekit.latent.attributes import AttributeTable, match_folder, read_attribute_table, read_folder_images
from vaekit.latent.codes import check_codes, check_indices, decode_images, decode_values, encode_means, load_model_and_data, mean_kl_per_dim, reconstruct
from vaekit.latent.noise import CORRUPTIONS, corrupt, psnr
from vaekit.latent.operations import (Arithmetic, Denoising, LatentMap, Traversal, class_arithmetic, denoise, latent_map,
                         table_arithmetic, traverse)
from vaekit.latent.paths import INTERPOLATION_METHODS, bilinear_grid, dimension_order, interpolate, lerp, slerp, traversal
from vaekit.latent.projection import PROJECTIONS, Projection, manifold_codes, project_2d, quantile_grid, range_grid
from vaekit.latent.sampling import (GMM_COMPONENTS, SAMPLERS, fit_aggregate_posterior, mixture_samples, model_prior_samples,
                       prior_samples, sample_codes)

__all__ = [
    "Arithmetic", "AttributeTable", "CORRUPTIONS", "DEFAULT_ALPHAS", "Denoising", "GMM_COMPONENTS",
    "INTERPOLATION_METHODS", "LatentMap", "PROJECTIONS", "Projection", "SAMPLERS", "Traversal",
    "attribute_vector", "bilinear_grid", "check_codes", "check_indices", "class_arithmetic", "class_vector", "corrupt",
    "decode_images", "decode_values", "denoise", "dimension_order", "encode_means", "fit_aggregate_posterior", "images_not_of",
    "interpolate",
    "latent_map", "lerp", "load_model_and_data", "manifold_codes", "match_folder", "mean_kl_per_dim",
    "mixture_samples", "model_prior_samples", "parse_alphas", "prior_samples", "project_2d", "psnr", "quantile_grid", "range_grid",
    "read_attribute_table", "read_folder_images", "reconstruct", "resolve_class", "sample_codes", "shift_codes",
    "slerp", "table_arithmetic", "traversal", "traverse",
]
