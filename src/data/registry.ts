/**
 * The dataset registry: name, files, URLs, checksums and format of every dataset the GOE
 * experiments use. Checksums are those pytorch-ood / torchvision record (see shared/REFERENCE.md);
 * the CIFAR binary ones are from the CIFAR page. ImageNet itself is not downloadable (licence):
 * point `imageFolder` at your copy of the validation set.
 */
import { DataError } from './errors.ts';
import { type DatasetEntry, type DownloadOptions, type DownloadResult, ensureDataset, locateDataset } from './download.ts';

export interface RegistryEntry extends DatasetEntry {
  /** Folder under the data directory when it is not the entry's name (both CIFAR formats share one). */
  folder?: string;
}

const HENDRYCKS = 'https://people.eecs.berkeley.edu/~hendrycks';
const OE_NLP = 'https://raw.githubusercontent.com/hendrycks/outlier-exposure/master/NLP_classification';
const R52 = 'https://raw.githubusercontent.com/hendrycks/error-detection/master/NLP/Categorization/data';

export const DATASETS: Record<string, RegistryEntry> = {
  cifar10: {
    name: 'cifar10',
    description: 'CIFAR-10, binary version: 50,000 train + 10,000 test 32x32 RGB images, 10 classes',
    format: 'cifar-binary',
    files: [{ name: 'cifar-10-binary.tar.gz', url: 'https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz', md5: 'c32a1d4ab5d03f1284b67883e8d87530', extract: 'tar.gz' }],
  },
  'cifar10-python': {
    name: 'cifar10-python',
    folder: 'cifar10',
    description: 'CIFAR-10, python (pickle) version, as torchvision downloads it',
    format: 'cifar-python',
    files: [{ name: 'cifar-10-python.tar.gz', url: 'https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz', md5: 'c58f30108f718f92721af3b95e74349a', extract: 'tar.gz' }],
  },
  cifar100: {
    name: 'cifar100',
    description: 'CIFAR-100, binary version: 50,000 train + 10,000 test 32x32 RGB images, 100 fine / 20 coarse classes',
    format: 'cifar-binary',
    files: [{ name: 'cifar-100-binary.tar.gz', url: 'https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz', md5: '03b5dce01913d631647c71ecec9e9cb8', extract: 'tar.gz' }],
  },
  'cifar100-python': {
    name: 'cifar100-python',
    folder: 'cifar100',
    description: 'CIFAR-100, python (pickle) version, as torchvision downloads it',
    format: 'cifar-python',
    files: [{ name: 'cifar-100-python.tar.gz', url: 'https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz', md5: 'eb9058c3a382ffc7106e4002c42a8d85', extract: 'tar.gz' }],
  },
  mnist: {
    name: 'mnist',
    description: 'MNIST handwritten digits (IDX, gzipped), torchvision mirror',
    format: 'idx',
    files: [
      ['train-images-idx3-ubyte.gz', 'f68b3c2dcbeaaa9fbdd348bbdeb94873'],
      ['train-labels-idx1-ubyte.gz', 'd53e105ee54ea40749a09fcbcd1e9432'],
      ['t10k-images-idx3-ubyte.gz', '9fb629c4189551a2d022fa330f9573f3'],
      ['t10k-labels-idx1-ubyte.gz', 'ec29112dd5afa0611ce80d1b7f02629c'],
    ].map(([name, md5]) => ({ name: name!, md5, url: `https://ossci-datasets.s3.amazonaws.com/mnist/${name}` })),
  },
  kmnist: {
    name: 'kmnist',
    description: 'Kuzushiji-MNIST: 28x28 grey cursive Japanese characters, 10 classes (IDX, gzipped); URLs and md5s as torchvision',
    format: 'idx',
    files: [
      ['train-images-idx3-ubyte.gz', 'bdb82020997e1d708af4cf47b453dcf7'],
      ['train-labels-idx1-ubyte.gz', 'e144d726b3acfaa3e44228e80efcd344'],
      ['t10k-images-idx3-ubyte.gz', '5c965bf0a639b31b8f53240b1b52f4d7'],
      ['t10k-labels-idx1-ubyte.gz', '7320c461ea6c1c855c0b718fb2a4b134'],
    ].map(([name, md5]) => ({ name: name!, md5, url: `http://codh.rois.ac.jp/kmnist/dataset/kmnist/${name}` })),
  },
  'notmnist-small': {
    name: 'notmnist-small',
    description:
      'notMNIST small: about 18,700 28x28 grey PNG glyphs of A-J in folders notMNIST_small/A..J (a few files are unreadable). ' +
      'No checksum is published: the size is the one the Udacity deep-learning notebook checks',
    format: 'image-folder',
    files: [{ name: 'notMNIST_small.tar.gz', url: 'https://commondatastorage.googleapis.com/books1000/notMNIST_small.tar.gz', size: 8458043, extract: 'tar.gz' }],
  },
  'fashion-mnist': {
    name: 'fashion-mnist',
    description: "Fashion-MNIST (IDX, gzipped); Debian's dataset-fashion-mnist package is used instead when installed",
    format: 'idx',
    files: [
      ['train-images-idx3-ubyte.gz', '8d4fb7e6c68d591d4c3dfef9ec88bf0d'],
      ['train-labels-idx1-ubyte.gz', '25c81989df183df01b3e8a0aad5dffbe'],
      ['t10k-images-idx3-ubyte.gz', 'bef4ecab320f06d8554ea6380940ec79'],
      ['t10k-labels-idx1-ubyte.gz', 'bb300cfdad3c16e7a12a480ee83cd310'],
    ].map(([name, md5]) => ({ name: name!, md5, url: `http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/${name}` })),
  },
  textures: {
    name: 'textures',
    description: 'Describable Textures Dataset (DTD) r1.0.1: 5,640 JPEGs in 47 class folders under dtd/images',
    format: 'image-folder',
    files: [{ name: 'dtd-r1.0.1.tar.gz', url: 'https://www.robots.ox.ac.uk/~vgg/data/dtd/download/dtd-r1.0.1.tar.gz', md5: 'fff73e5086ae6bdbea199a49dfb8a4c1', extract: 'tar.gz' }],
  },
  'tinyimagenet-crop': {
    name: 'tinyimagenet-crop',
    description: 'TinyImageNet (crop), ODIN release: 10,000 32x32 JPEGs under Imagenet/test',
    format: 'image-folder',
    files: [{ name: 'Imagenet.tar.gz', url: 'https://www.dropbox.com/s/raw/avgm2u562itwpkl/Imagenet.tar.gz', md5: '7c0827e4246c3718a5ee076e999e52e5', extract: 'tar.gz' }],
  },
  'tinyimagenet-resize': {
    name: 'tinyimagenet-resize',
    description: 'TinyImageNet (resize), ODIN release: 10,000 32x32 JPEGs under Imagenet_resize/Imagenet_resize',
    format: 'image-folder',
    files: [{ name: 'Imagenet_resize.tar.gz', url: 'https://www.dropbox.com/s/raw/kp3my3412u5k9rl/Imagenet_resize.tar.gz', md5: '0f9ff11d45babf2eff5fe12281d1ac31', extract: 'tar.gz' }],
  },
  'lsun-crop': {
    name: 'lsun-crop',
    description: 'LSUN (crop), ODIN release: 10,000 32x32 JPEGs under LSUN/test',
    format: 'image-folder',
    files: [{ name: 'LSUN.tar.gz', url: 'https://www.dropbox.com/s/raw/fhtsw1m3qxlwj6h/LSUN.tar.gz', md5: '458a0a0ab8e5f1cb4516d7400568e460', extract: 'tar.gz' }],
  },
  'lsun-resize': {
    name: 'lsun-resize',
    description: 'LSUN (resize), ODIN release: 10,000 32x32 JPEGs under LSUN_resize/LSUN_resize',
    format: 'image-folder',
    files: [{ name: 'LSUN_resize.tar.gz', url: 'https://www.dropbox.com/s/raw/moqh2wh8696c3yl/LSUN_resize.tar.gz', md5: '278b7b31c8cb7e804a1465a8ce03a2dc', extract: 'tar.gz' }],
  },
  tinyimages300k: {
    name: 'tinyimages300k',
    description: 'TinyImages 300K random images (OE repository): uint8 array (300000, 32, 32, 3), about 0.9 GB, read lazily',
    format: 'npy',
    files: [{ name: '300K_random_images.npy', url: `${HENDRYCKS}/300K_random_images.npy`, md5: '64ca64357de98351f28454274a112dc3' }],
  },
  'imagenet-a': {
    name: 'imagenet-a',
    description: 'ImageNet-A: 7,500 natural adversarial images of 200 ImageNet classes (WordNet-id folders)',
    format: 'image-folder',
    files: [{ name: 'imagenet-a.tar', url: `${HENDRYCKS}/imagenet-a.tar`, md5: 'c3e55429088dc681f30d81f4726b6595', extract: 'tar' }],
  },
  'imagenet-o': {
    name: 'imagenet-o',
    description: 'ImageNet-O: 2,000 images of classes outside ImageNet-1k (OOD), WordNet-id folders',
    format: 'image-folder',
    files: [{ name: 'imagenet-o.tar', url: `${HENDRYCKS}/imagenet-o.tar`, md5: '86bd7a50c1c4074fb18fc5f219d6d50b', extract: 'tar' }],
  },
  'imagenet-r': {
    name: 'imagenet-r',
    description: 'ImageNet-R: 30,000 renditions of 200 ImageNet classes (WordNet-id folders)',
    format: 'image-folder',
    files: [{ name: 'imagenet-r.tar', url: `${HENDRYCKS}/imagenet-r.tar`, md5: 'a61312130a589d0ca1a8fca1f2bd3337', extract: 'tar' }],
  },
  'goe-cifar100-samples': {
    name: 'goe-cifar100-samples',
    description: 'GOE paper: 50,000 BigGAN (CIFAR-100) samples at sigma^2 = 50, uint8 NCHW array "x"',
    format: 'npz',
    files: [{ name: 'samples-50.0.npz', url: 'https://files.kondas.de/goe-data/samples-50.0.npz', md5: '95f1365e4c6e188595bb8476d43a82d9' }],
  },
  'goe-cifar100-samples-2': {
    name: 'goe-cifar100-samples-2',
    folder: 'goe-cifar100-samples',
    description: 'GOE paper: 50,000 BigGAN (CIFAR-100) samples at sigma^2 = 2, uint8 NCHW array "x"',
    format: 'npz',
    files: [{ name: 'samples-2.0.npz', url: 'https://files.kondas.de/goe-data/samples-2.0.npz', md5: 'f130876edbbc13ab2bdc6f7caaa1180d' }],
  },
  newsgroups20: {
    name: 'newsgroups20',
    description: '20 Newsgroups as in the OE repository: one `label<TAB>text` document per line, 20 classes',
    format: 'labelled-lines',
    files: [
      { name: '20ng-train-no-short.txt', url: `${OE_NLP}/20newsgroups/orig_data/20ng-train-no-short.txt`, md5: '4444a088dda968b44f7a6dec756698b3' },
      { name: '20ng-test-no-short.txt', url: `${OE_NLP}/20newsgroups/orig_data/20ng-test-no-short.txt`, md5: '978c4d8fd3bde6a12a1e8312f0031815' },
    ],
  },
  reuters52: {
    name: 'reuters52',
    description: 'Reuters-21578 R52 (Hendrycks error-detection repository): `label<TAB>text` lines, 52 classes',
    format: 'labelled-lines',
    files: [
      { name: 'r52-train.txt', url: `${R52}/r52-train.txt`, md5: '6b1d32bd95e95c1c26cd592d3bdb8c0e' },
      { name: 'r52-test.txt', url: `${R52}/r52-test.txt`, md5: '8a82cdf79e111df1bb23a9bbc48f6d25' },
    ],
  },
  multi30k: {
    name: 'multi30k',
    description: 'Multi30k English captions (OE repository): one sentence per line',
    format: 'lines',
    files: [
      { name: 'train.txt', url: `${OE_NLP}/multi30k/train.txt`, md5: '094c68794632983239bf1bc1b37282a8' },
      { name: 'val.txt', url: `${OE_NLP}/multi30k/val.txt`, md5: '8d407ae05dbc61e3e61ffd3a3f9d39fb' },
    ],
  },
  wmt16: {
    name: 'wmt16',
    description: 'WMT16 English sentences (OE repository): one sentence per line',
    format: 'lines',
    files: [{ name: 'wmt16_sentences', url: `${OE_NLP}/wmt16/wmt16_sentences`, md5: '6dff65f45ac112c150b8a2cc30509b03' }],
  },
  wikitext2: {
    name: 'wikitext2',
    description: 'WikiText-2 (v1, tokenised): wikitext-2/wiki.{train,valid,test}.tokens',
    format: 'lines',
    files: [{ name: 'wikitext-2-v1.zip', url: 'https://s3.amazonaws.com/research.metamind.io/wikitext/wikitext-2-v1.zip', md5: '542ccefacc6c27f945fb54453812b3cd', extract: 'zip' }],
  },
};

export function registryEntry(name: string): RegistryEntry {
  const e = DATASETS[name];
  if (e === undefined) throw new DataError(`unknown dataset '${name}' (known: ${Object.keys(DATASETS).join(', ')})`);
  return e;
}

function asEntry(e: RegistryEntry): DatasetEntry {
  return { ...e, name: e.folder ?? e.name };
}

/** Download (or find in the cache) and verify a registered dataset; returns its folder. */
export async function download(name: string, opts: DownloadOptions = {}): Promise<DownloadResult> {
  return ensureDataset(asEntry(registryEntry(name)), opts);
}

/** The folder of a registered dataset that is already in the cache (verified); never touches the network. */
export async function locate(name: string, opts: Pick<DownloadOptions, 'dir'> = {}): Promise<string> {
  return locateDataset(asEntry(registryEntry(name)), opts);
}
