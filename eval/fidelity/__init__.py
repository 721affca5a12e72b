"""Weight-free fidelity against a ground-truth video: LMD (mouth landmarks), PSNR and SSIM."""
