/**
 * Named sweeps that remake the paper's figures (`goe sweep --recipe NAME`), documented in
 * src/goe/experiments/README.md. Values the paper states are used as stated; where its text gives
 * none (the figures' x values are in the images only), the grid is ours and `note` says so.
 */
import type { SweepParam } from './plan.ts';

export interface SweepRecipe {
  name: string;
  figure: string;
  experiment: string;
  param: SweepParam;
  values: number[];
  seeds: number;
  variants?: string[];
  /** Further `goe experiment` options. */
  args?: string[];
  note: string;
}

/** shared/REFERENCE.md: "Sweep sigma^2 in {0, .5, 1, 2, 5, 10, 20, 30, 40, 50}; outlier count sweep 100 .. 100k". */
const SIGMA2_GRID = [0, 0.5, 1, 2, 5, 10, 20, 30, 40, 50];
const COUNT_GRID = [100, 1000, 5000, 10000, 50000, 100000];

export const RECIPES: Readonly<Record<string, SweepRecipe>> = {
  'fig2-cifar100': { name: 'fig2-cifar100', figure: 'Fig. 2 (CIFAR-100)', experiment: 'cifar100', param: 'sigma2', values: SIGMA2_GRID, seeds: 1, variants: ['generated'], note: 'grid of the reference sweep; one seed (the paper gives intervals for NewsGroups only); needs --generator (the released samples exist at sigma^2 = 50 only) or trains the BigGAN in base/' },
  'fig2-cifar10': { name: 'fig2-cifar10', figure: 'Fig. 2 (CIFAR-10)', experiment: 'cifar10', param: 'sigma2', values: SIGMA2_GRID, seeds: 1, variants: ['generated'], note: 'as fig2-cifar100' },
  'fig2-newsgroups': { name: 'fig2-newsgroups', figure: 'Fig. 2 (NewsGroups)', experiment: 'newsgroups', param: 'temperature', values: [0.5, 1, 1.5, 2, 3, 5], seeds: 5, variants: ['generated'], note: 'five seeds as the paper; the temperatures are ours (the text gives only the chosen T = 2)' },
  'fig3-imagenet': { name: 'fig3-imagenet', figure: 'Fig. 3 (ImageNet, ResNet-101)', experiment: 'imagenet', param: 'sigma2', values: [0, 0.5, 1, 2, 5, 10, 20], seeds: 1, variants: ['generated'], note: 'the paper samples ImageNet outliers at sigma^2 = 2; the grid around it is ours; needs the imagenet experiment and its data' },
  'fig5-cifar100': { name: 'fig5-cifar100', figure: 'Fig. 5 (CIFAR-100, sigma^2 = 50)', experiment: 'cifar100', param: 'count', values: COUNT_GRID, seeds: 1, variants: ['generated'], note: 'counts of the reference sweep (100 .. 100k) at sigma^2 = 50' },
  'fmnist-sigma2': { name: 'fmnist-sigma2', figure: 'Fig. 2 on the fmnist budget', experiment: 'fmnist', param: 'sigma2', values: [0, 0.5, 1, 2, 5, 10, 20, 50], seeds: 1, variants: ['generated'], note: 'the main job\'s budget; z std as the reference reads sigma^2' },
  'fmnist-count': { name: 'fmnist-count', figure: 'Fig. 5 on the fmnist budget', experiment: 'fmnist', param: 'count', values: [100, 300, 1000, 4096], seeds: 1, variants: ['generated', 'noise'], note: 'up to the budget\'s 4,096 outliers; noise beside generated' },
};
