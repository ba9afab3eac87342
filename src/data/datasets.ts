/**
 * One call per dataset of the GOE experiments: find it in the data cache (or download and verify
 * it), then read it with the right reader, with the settings the paper and its peers use.
 * Pass `download: false` to never touch the network (a missing dataset is then a clear error
 * saying which file to put where).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CIFAR_LAYOUT, type CifarSplit, type CifarVariant, readCifar } from './cifar.ts';
import type { DownloadOptions } from './download.ts';
import { readMnist } from './idx.ts';
import { imageFolder, type ImageFolderOptions } from './images.ts';
import { NpzFile, openNpyImages } from './npy.ts';
import { dataDir } from './paths.ts';
import { download, locate, registryEntry } from './registry.ts';
import type { ArraySource, ImageFilesSource, NpySource } from './source.ts';
import { type LabelledText, NEWSGROUPS20_CLASSES, REUTERS52_CLASSES, readLabelledLines, readTextLines } from './text.ts';

export interface GetOptions extends DownloadOptions {
  /** Download a missing dataset (default true); false only looks in the data folder. */
  download?: boolean;
}

async function folderOf(name: string, opts: GetOptions): Promise<string> {
  return opts.download === false ? locate(name, opts) : (await download(name, opts)).folder;
}

/** CIFAR-10/100. An already extracted binary or python (torchvision) copy in the data folder is used as it is. */
export async function loadCifar(variant: CifarVariant, split: CifarSplit, opts: GetOptions & { format?: 'auto' | 'binary' | 'python'; labels?: 'fine' | 'coarse' } = {}): Promise<ArraySource> {
  const root = join(opts.dir ?? dataDir(), variant);
  const layout = CIFAR_LAYOUT[variant];
  const present = (f: 'binary' | 'python'): boolean => layout[f][split].every((n) => existsSync(join(root, layout[f].dir, n)));
  const format = opts.format ?? 'auto';
  const want: 'binary' | 'python' = format === 'python' || (format === 'auto' && !present('binary') && present('python')) ? 'python' : 'binary';
  if (!present(want)) await folderOf(want === 'binary' ? variant : `${variant}-python`, opts);
  return readCifar({ variant, split, root, format: want, labels: opts.labels });
}

/** MNIST / Fashion-MNIST (Fashion-MNIST from Debian's dataset-fashion-mnist package when installed). */
export async function loadMnist(name: 'mnist' | 'fashion-mnist', split: 'train' | 'test', opts: GetOptions = {}): Promise<ArraySource> {
  try {
    return await readMnist({ name, split, root: join(opts.dir ?? dataDir(), name), systemPackage: true });
  } catch (e) {
    if (opts.download === false) throw e;
  }
  const folder = await folderOf(name, opts);
  return readMnist({ name, split, root: folder });
}

/** TinyImages 300K (the OE repository's outliers): 300,000 HWC uint8 images read lazily from the .npy. */
export async function loadTinyImages300k(opts: GetOptions = {}): Promise<NpySource | ArraySource> {
  const folder = await folderOf('tinyimages300k', opts);
  return openNpyImages(join(folder, registryEntry('tinyimages300k').files[0]!.name), { layout: 'HWC' });
}

/** The GOE paper's generated CIFAR-100 outliers (sigma^2 = 50 or 2): uint8 NCHW samples from the .npz member "x". */
export async function loadGoeSamples(sigma2: 50 | 2 = 50, opts: GetOptions = {}): Promise<NpySource | ArraySource> {
  const name = sigma2 === 50 ? 'goe-cifar100-samples' : 'goe-cifar100-samples-2';
  const folder = await folderOf(name, opts);
  const npz = await NpzFile.open(join(folder, registryEntry(name).files[0]!.name));
  return npz.images('x', { layout: 'CHW' });
}

/** Where each image OOD set's images are after extraction. */
const IMAGE_OOD_DIRS: Record<string, string> = {
  textures: 'dtd/images',
  'tinyimagenet-crop': 'Imagenet/test',
  'tinyimagenet-resize': 'Imagenet_resize/Imagenet_resize',
  'lsun-crop': 'LSUN/test',
  'lsun-resize': 'LSUN_resize/LSUN_resize',
};

/** The OOD test sets' decode geometry: the GOE notebooks' test() squashes, the OE repository crops. */
export const IMAGE_OOD_GEOMETRY: Readonly<Record<'notebooks' | 'oe-repo', Pick<ImageFolderOptions, 'resize' | 'centerCrop'>>> = {
  notebooks: { resize: [32, 32] },
  'oe-repo': { resize: 32, centerCrop: 32 },
};

/**
 * The CIFAR OOD test sets (Textures, TinyImageNet and LSUN crop/resize), unlabelled. Geometry:
 * 'notebooks' (default): the GOE notebooks' Resize([32, 32]), which squashes; 'oe-repo': the OE
 * repository's Resize(32) then CenterCrop(32). The ODIN sets are 32x32 already, so only Textures
 * differs between the two. Explicit resize / centerCrop options win.
 */
export async function loadImageOod(
  name: 'textures' | 'tinyimagenet-crop' | 'tinyimagenet-resize' | 'lsun-crop' | 'lsun-resize',
  opts: GetOptions & Omit<ImageFolderOptions, 'structure'> & { geometry?: 'notebooks' | 'oe-repo' } = {},
): Promise<ImageFilesSource> {
  const folder = await folderOf(name, opts);
  // pytorch-ood's sub-folder, else the archive's top folder (listed recursively) should the layout differ
  const sub = IMAGE_OOD_DIRS[name]!;
  const root = existsSync(join(folder, sub)) ? join(folder, sub) : join(folder, sub.split('/')[0]!);
  const { geometry = 'notebooks', ...rest } = opts;
  return imageFolder(root, { ...IMAGE_OOD_GEOMETRY[geometry], ...rest, structure: 'flat' });
}

/**
 * ImageNet-A, -R or -O (class folders named by WordNet id). Default geometry: Resize(256), CenterCrop(224).
 * Pass `classIndex` (WordNet id -> ImageNet-1k index) to get labels in the 1000-class space.
 */
export async function loadImageNetVariant(name: 'imagenet-a' | 'imagenet-r' | 'imagenet-o', opts: GetOptions & Omit<ImageFolderOptions, 'structure'> = {}): Promise<ImageFilesSource> {
  const folder = await folderOf(name, opts);
  return imageFolder(join(folder, name), { resize: 256, centerCrop: 224, ...opts, structure: 'subfolders' });
}

/** 20 Newsgroups (OE repository files): texts and labels 0..19. */
export async function loadNewsgroups20(split: 'train' | 'test', opts: GetOptions = {}): Promise<LabelledText> {
  const folder = await folderOf('newsgroups20', opts);
  return readLabelledLines(join(folder, `20ng-${split}-no-short.txt`), NEWSGROUPS20_CLASSES);
}

/** Reuters52: texts and labels 0..51. */
export async function loadReuters52(split: 'train' | 'test', opts: GetOptions = {}): Promise<LabelledText> {
  const folder = await folderOf('reuters52', opts);
  return readLabelledLines(join(folder, `r52-${split}.txt`), REUTERS52_CLASSES);
}

/** Multi30k English sentences ('train' = train.txt, 'test' = val.txt, as pytorch-ood). */
export async function loadMulti30k(split: 'train' | 'test', opts: GetOptions = {}, lines: { keepEmpty?: boolean } = {}): Promise<string[]> {
  const folder = await folderOf('multi30k', opts);
  return readTextLines(join(folder, split === 'train' ? 'train.txt' : 'val.txt'), lines);
}

/** WMT16 English sentences. */
export async function loadWmt16(opts: GetOptions = {}, lines: { keepEmpty?: boolean } = {}): Promise<string[]> {
  const folder = await folderOf('wmt16', opts);
  return readTextLines(join(folder, 'wmt16_sentences'), lines);
}

/** WikiText-2 lines (empty lines dropped unless keepEmpty: pytorch-ood's WikiText2 keeps them). */
export async function loadWikiText2(split: 'train' | 'valid' | 'test', opts: GetOptions = {}, lines: { keepEmpty?: boolean } = {}): Promise<string[]> {
  const folder = await folderOf('wikitext2', opts);
  return readTextLines(join(folder, 'wikitext-2', `wiki.${split}.tokens`), lines);
}
