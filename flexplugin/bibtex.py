"""
@article{Scheres2012,
title = "RELION: implementation of a Bayesian approach to cryo-EM structure determination",
author = "Scheres, S. H. W.",
journal = "J. Struct. Biol.",
volume = "180",
pages = "519--530",
year = "2012",
doi = "10.1016/j.jsb.2012.09.006"
}

@article{Punjani2017,
title = "cryoSPARC: algorithms for rapid unsupervised cryo-EM structure determination",
author = "Punjani, A. and Rubinstein, J. L. and Fleet, D. J. and Brubaker, M. A.",
journal = "Nat. Methods",
volume = "14",
pages = "290--296",
year = "2017",
doi = "10.1038/nmeth.4169"
}

@article{Zhong2021,
title = "CryoDRGN: reconstruction of heterogeneous cryo-EM structures using neural networks",
author = "Zhong, E. D. and Bepler, T. and Berger, B. and Davis, J. H.",
journal = "Nat. Methods",
volume = "18",
pages = "176--185",
year = "2021",
doi = "10.1038/s41592-020-01049-4"
}

@article{McInnes2018,
title = "UMAP: Uniform Manifold Approximation and Projection for Dimension Reduction",
author = "McInnes, L. and Healy, J. and Melville, J.",
journal = "arXiv",
volume = "1802.03426",
year = "2018",
doi = "10.48550/arXiv.1802.03426"
}

@article{Herreros2025,
title = "Real-space heterogeneous reconstruction, refinement, and disentanglement of CryoEM conformational states with HetSIREN",
author = "Herreros, D. and Perez Mata, C. and Noddings, C. and Irene, D. and Krieger, J. and Agard, D. A. and Tsai, M.-D. and Sorzano, C. O. S. and Carazo, J. M.",
journal = "Nat. Commun.",
year = "2025",
doi = "10.1038/s41467-025-59135-0"
}

@article{Chen2023,
title = "Improved cryo-EM pose estimation and 3D classification through latent-space disentanglement",
author = "Chen, W. and Wang, Y. and Yao, L.",
journal = "arXiv preprint",
year = "2023"
}

@article{Ducrocq2024,
title = "cryoSPHERE: Single-Particle HEterogeneous REconstruction from cryo EM",
author = "Ducrocq, G. and Grunewald, L. and Westenhoff, S. and Lindsten, F.",
journal = "arXiv preprint",
year = "2024"
}
"""
