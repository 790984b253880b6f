"""The paper's published numbers (Sinha et al., ACCV 2020, Tables 1-7), typed in from the paper text.

Values are strings exactly as printed ("mean ± std" or a single number, "—" where the paper has none).
A dagger (†) row was copied by the paper from another paper.
"""

RATIOS = ["0.9", "0.95", "0.98", "0.99", "0.995"]
IMBALANCES = ["200", "100", "50", "20", "10"]

# Table 1: MNIST 4/9 test error (%) of LeNet-5, mean ± std over 10 runs, by majority class ratio.
TABLE1 = {
    "CE": ["1.50 ± 0.51", "2.36 ± 0.46", "5.09 ± 0.41", "8.59 ± 0.41", "14.35 ± 1.10"],
    "IFW": ["1.16 ± 0.40", "1.74 ± 0.31", "3.13 ± 0.74", "6.01 ± 0.56", "8.94 ± 0.70"],
    "Focal": ["1.74 ± 0.26", "2.78 ± 0.29", "6.67 ± 0.63", "11.11 ± 1.20", "17.17 ± 0.86"],
    "CB": ["1.07 ± 0.23", "1.79 ± 0.39", "3.58 ± 0.71", "5.88 ± 1.20", "8.61 ± 1.11"],
    "EQL": ["1.49 ± 0.34", "2.26 ± 0.41", "2.43 ± 0.14", "2.60 ± 0.33", "3.71 ± 0.41"],
    "L2RW": ["1.24 ± 0.69", "1.76 ± 1.12", "2.06 ± 0.85", "2.63 ± 0.65", "3.94 ± 1.23"],
    "CDB-CE": ["0.74 ± 0.14", "1.27 ± 0.33", "1.65 ± 0.26", "2.39 ± 0.41", "3.71 ± 0.27"],
}

# Table 2: CDB-CE test error (%) on MNIST 4/9 for each tau, by majority class ratio.
TABLE2 = {
    "0.5": ["1.06 ± 0.34", "1.43 ± 0.24", "1.93 ± 0.27", "2.59 ± 0.44", "4.03 ± 0.41"],
    "1": ["0.90 ± 0.27", "1.38 ± 0.20", "1.86 ± 0.30", "2.49 ± 0.57", "3.94 ± 0.36"],
    "1.5": ["0.85 ± 0.19", "1.35 ± 0.31", "1.71 ± 0.28", "2.31 ± 0.38", "3.54 ± 0.25"],
    "2": ["0.75 ± 0.15", "1.21 ± 0.32", "1.75 ± 0.36", "2.23 ± 0.34", "3.65 ± 0.41"],
    "5": ["0.88 ± 0.25", "1.19 ± 0.36", "2.00 ± 0.32", "2.51 ± 0.41", "3.78 ± 0.43"],
    "7": ["0.96 ± 0.20", "1.20 ± 0.20", "2.04 ± 0.30", "2.64 ± 0.40", "4.13 ± 0.37"],
    "dynamic": ["0.74 ± 0.14", "1.27 ± 0.33", "1.65 ± 0.26", "2.39 ± 0.41", "3.71 ± 0.27"],
}

# Table 3: top-1 accuracy (%) of ResNet-32 on CIFAR-100-LT, by imbalance. † rows copied from other papers.
TABLE3 = {
    "Focal †": ["35.62", "38.41", "44.32", "51.95", "55.78"],
    "Class-Balanced †": ["36.23", "39.60", "45.32", "52.99", "57.99"],
    "L2RW †": ["33.38", "40.23", "44.44", "51.64", "53.73"],
    "Meta-Weight Net †": ["37.91", "42.09", "46.74", "54.37", "58.46"],
    "Equalization loss †": ["37.34", "40.54", "44.70", "54.12", "58.32"],
    "LDAM-DRW †": ["—", "42.04", "—", "—", "58.71"],
    "CDB-CE": ["37.40", "42.57", "46.78", "54.22", "58.74"],
}

# Table 4: top-1 accuracy (%) of ResNet-32 on CIFAR-100-LT with CDB-CE for each tau (0 = plain CE).
TABLE4 = {
    "0": ["34.95", "38.21", "43.89", "51.34", "55.65"],
    "0.5": ["37.21", "41.26", "46.13", "54.60", "58.29"],
    "1": ["37.99", "41.67", "46.45", "53.48", "59.47"],
    "1.5": ["37.63", "42.70", "47.09", "52.74", "58.68"],
    "2": ["37.03", "42.44", "46.94", "53.00", "58.65"],
    "5": ["36.81", "40.62", "45.45", "51.67", "54.48"],
    "dynamic": ["37.40", "42.57", "46.78", "54.22", "58.74"],
}

# Table 5: top-1 accuracy (%) of ResNet-10 on ImageNet-LT.
TABLE5 = {
    "Focal †": "30.50",
    "OLTR †": "35.60",
    "Joint training †": "34.80",
    "Equalization loss †": "36.44",
    "OLTR + CDB-CE": "36.70",
    "Joint training + CDB-CE": "37.10",
    "CDB-CE": "38.49",
}

# Table 6: 3D-ResNeXt-101 on EGTEA (test): Acc@Top1, Acc@Top5, macro recall, macro precision.
TABLE6_COLUMNS = ["Acc@Top1", "Acc@Top5", "Recall", "Precision"]
TABLE6 = {
    "CE": ["67.41", "95.40", "64.77", "61.73"],
    "Focal": ["64.34", "94.36", "59.17", "59.09"],
    "CB": ["66.86", "95.69", "63.26", "63.39"],
    "CDB-CE": ["69.14", "96.84", "66.24", "63.86"],
}

# Table 7: EGTEA recall / precision on the 5 most frequent ("majority") and the other 14 ("minority") verbs.
TABLE7_COLUMNS = ["Majority recall", "Majority precision", "Minority recall", "Minority precision"]
TABLE7 = {
    "CE": ["74.91", "75.62", "61.14", "56.75"],
    "Focal": ["70.27", "75.00", "55.21", "53.40"],
    "CB": ["75.95", "73.75", "58.72", "59.68"],
    "CDB-CE": ["74.42", "73.51", "63.31", "60.42"],
}
