"""Tag and explain your own images: predictor API, calibration, outputs, gallery, web demo."""
