/** The data stage: datasets in memory and in files (IDX, npy, CIFAR-10, image folders). */
export { ArrayDataset, fromArrays, subset, concat, map, describeDataset } from "./memory";
export { idx, fashionMnist, mnist, npy, cifar10, parseIdx, parseNpy, FASHION_MNIST_CLASSES, FASHION_MNIST_ROOT, CIFAR10_CLASSES } from "./formats";
export { imageFolder, decodeImage, findCorruption } from "./folder";
export type { ImageFolderOptions } from "./folder";
export type { Dataset, Sample, Image, MaybePromise } from "./types";
