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
"""
