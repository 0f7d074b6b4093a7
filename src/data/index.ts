/**
 * The data stage: datasets in memory (fromArrays) and in files (IDX with Fashion-MNIST and
 * MNIST, NumPy .npy, CIFAR-10 binary batches, PNG/JPEG image folders), and the combinators
 * subset, concat and map. Every dataset implements Dataset from ./types.
 */
export { ArrayDataset, fromArrays } from "./memory";
export type { ArrayDatasetOptions } from "./memory";
export { subset, concat, map } from "./combine";
export type { MapOptions } from "./combine";
export { idx, parseIdx, fashionMnist, mnist, FASHION_MNIST_CLASSES, FASHION_MNIST_ROOT, MNIST_CLASSES } from "./idx";
export type { IdxArray, MnistOptions } from "./idx";
export { npy, parseNpy } from "./npy";
export type { NpyArray } from "./npy";
export { cifar10, CIFAR10_CLASSES } from "./cifar";
export type { Cifar10Options } from "./cifar";
export { imageFolder, decodeImage, decodeImageBytes } from "./folder";
export type { ImageFolderOptions, ImageFolderDataset, Channels } from "./folder";
export { webdataset, writeShards, expandBraces, shardUrls, readShard, splitMemberName, isStreamDataset, webdatasetOptions } from "./webdataset";
export type { WebDataset, WebDatasetOptions, StreamDataset, StreamRecord, RawRecord, ShardItem, ShardMember, WriteShardsOptions, WrittenShards } from "./webdataset";
export { findCorruption, scanPng, scanJpeg } from "./scan";
export { jpegDecoder, readJpegHeader, exifOrientation } from "./jpeg";
export type { JpegHeader } from "./jpeg";
export type { Corruption } from "./scan";
export { describeDataset } from "./display";
export type { Dataset, Sample, Image, MaybePromise } from "./types";
