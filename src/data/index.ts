/**
 * The datasets layer: readers, verified downloads, tokenizer, and the batching pipeline.
 * See each module for details; this file only re-exports the public API.
 */
export { DataError, DatasetUnavailableError } from './errors.ts';
export { dataDir, DEBIAN_FASHION_MNIST_DIR } from './paths.ts';
export { Rng, permutation } from './rng.ts';
export type { Layout, SampleDType, Source, ArraySource, NpySource, ImageFilesSource, RandomTokensSource } from './source.ts';
export { sampleSize, subset, tokenLength, withLabels } from './source.ts';
export { unpickle, NDArray, PyTuple, PyStr8, NumpyDType, type PyValue } from './pickle.ts';
export { readCifar, readCifarBinary, readCifarPython, readCifarPythonMeta, CIFAR10_CLASSES, type CifarOptions, type CifarVariant, type CifarSplit } from './cifar.ts';
export { parseIdx, readIdx, readIdxPair, readMnist, FASHION_MNIST_CLASSES, type IdxArray } from './idx.ts';
export { parseNpyHeader, readNpyHeader, readNpy, decodeNpyData, openNpyImages, NpzFile, toLabels, type NpyHeader, type NpyArray, type ImageSourceOptions } from './npy.ts';
export { listZip, readZipMember, extractZip, type ZipMember } from './zip.ts';
export { imageFolder, imageFiles, decodeImage, decodeImageInto, verifyImages, outputSize, IMAGE_EXTENSIONS, type DecodeOptions, type ImageFolderOptions, type VerifyReport } from './images.ts';
export { resample, resizeOutputSize, centerCrop, roundHalfEven, type Interpolation } from './resize.ts';
export { basicEnglish, basicEnglishReference, splitWhitespace, Vocab, numericalise, textSource, nltkEnglishStopWords, pytorchOodText, type TextSourceOptions, readLabelledLines, readTextLines, NEWSGROUPS20_CLASSES, REUTERS52_CLASSES, type VocabOptions, type NumericaliseOptions, type LabelledText } from './text.ts';
export { downloadFile, extractArchive, ensureDataset, locateDataset, fileDigests, type RemoteFile, type DatasetEntry, type DownloadOptions, type DownloadResult } from './download.ts';
export { DATASETS, registryEntry, download, locate, type RegistryEntry } from './registry.ts';
export { loadCifar, loadMnist, loadTinyImages300k, loadGoeSamples, loadImageOod, IMAGE_OOD_GEOMETRY, loadImageNetVariant, loadNewsgroups20, loadReuters52, loadMulti30k, loadWmt16, loadWikiText2, type GetOptions } from './datasets.ts';
export { compileTransform, writeSample, CIFAR_MEAN, CIFAR_STD, IMAGENET_MEAN, IMAGENET_STD, type ImageTransform } from './transforms.ts';
export { DataLoader, type LoaderOptions, type OutlierOptions, type Batch } from './loader.ts';
export type { Skip } from './assemble.ts';
export { uploadBatch, uploadSeparate, type Upload, type UploadInt, type UploadHooks, type UploadedBatch, type UploadedSeparate } from './upload.ts';
export { openImageSet, openLabelledImageSet, openTrainTest, checkTrainTest, type UserImageOptions, type LabelledImageOptions, type LabelledImageSet } from './user-data.ts';
export { arrayGeometry, type ArrayImageOptions } from './user-arrays.ts';
export { convertPixels, convertSource, rgbToLuma, type ImageTarget } from './user-pixels.ts';
export { channelStats } from './channel-stats.ts';
export { OOD_SIDE, lumaOnBlack, toSide28, pixelStd, type OfflineSet, type OfflineSetInfo, type CacheOptions } from './offline-sets.ts';
export { buildFontGlyphs, GLYPH_CHARS, GLYPH_FONT_DIRS, type FontGlyphOptions } from './font-glyphs.ts';
export { buildIconImages, iconFiles, ICON_THEMES, type IconImageOptions } from './icon-images.ts';
export { fashionMnistOodSets, noiseSet, loadKmnist, loadMnistOod, loadNotMnistSmall, loadCifar10Grey, type OodGetOptions, type FashionMnistOodOptions, type OodSets } from './offline-ood.ts';
