"""KL-regularised fine-tuning of diffusion models as stochastic control (PI-FT).

Han, Razaviyayn, Xu, "Stochastic Control for Fine-tuning Diffusion Models: Optimality,
Regularity, and Convergence" (ICML 2025, arXiv 2412.18164); our reading and notation in
``book/notation.md`` (*The controlled chain*, *The tilted target and the Bellman recursion*).

- ``rewards``     quadratic/linear (the LQ class), bump and log-sigmoid rewards, with gradients;
- ``chain``       the controlled DDPM chain, the KL cost, Monte Carlo of the objective J(u);
- ``lq``          the exact LQ solution: Riccati-type recursion, policy evaluation, exact laws,
                  the tilted target p* (Gaussian and Gaussian-mixture);
- ``pift``        PI-FT (LQ class and grid), outer policy iteration, rates, regularity bounds;
- ``grid``        Catmull-Rom interpolation, Gauss-Hermite quadrature, finite-difference
                  Lipschitz constants on 1-D/2-D grids;
- ``continuous``  the continuous-time limit: Riccati ODEs of the HJB equation, Cole-Hopf value;
- ``analysis``    the sweeps behind the chapters' figures.
"""
