// Generated 1688-like catalogue data for benchmarks: Chinese titles built from real category
// words, attributes, SKUs, price tiers and image URLs, deterministic for a given seed.
import { createHash } from 'node:crypto';

const SEASONS = ['2024夏季', '2025春秋', '冬季加厚', '新款', '爆款', '跨境', '网红同款', '工厂直销'];
const STYLES = ['法式', '韩版', '复古', '简约', 'ins风', '北欧', '日式', '中国风', '宽松', '修身'];
const MATERIALS = ['纯棉', '雪纺', '316不锈钢', '硅胶', '真皮', '帆布', '亚克力', '竹纤维', '塑料', '玻璃'];
const NOUNS = ['连衣裙', '保温杯', '数据线', '双肩包', '收纳盒', '手机壳', '拖鞋', '毛巾', '台灯', '马克杯', '卫衣', '充电宝', '儿童玩具', '瑜伽垫', '雨伞'];
const SUFFIXES = ['女', '男女通用', '大容量', '快充 USB-C', '抽屉式', '防滑', '加绒', '批发', '一件代发', '可定制logo'];
const COLORS = ['黑色', '白色', '米色', '粉色', '蓝色', '灰色'];
const ORIGINS = ['浙江义乌', '广东深圳', '福建泉州', '江苏苏州', '山东青岛'];

/** A small deterministic PRNG (mulberry32), so every run generates the same catalogue. */
export function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pick = <T>(r: () => number, list: T[]) => list[Math.floor(r() * list.length)];

export function generateTitle(r: () => number): string {
  return `${pick(r, SEASONS)}${pick(r, STYLES)}${pick(r, MATERIALS)}${pick(r, NOUNS)} ${pick(r, SUFFIXES)} ${pick(r, STYLES)}${pick(r, NOUNS)}`;
}

export interface GeneratedProduct {
  externalId: string;
  supplierExternalId: string;
  title: string;
  categoryId: string;
  categoryPath: string[];
  priceMin: number;
  priceMax: number;
  currency: string;
  priceTiers: { minQuantity: number; price: number }[];
  moq: number;
  unit: string;
  skus: { externalId: string; attributes: Record<string, string>; price: number; stock: number }[];
  attributes: Record<string, string>;
  images: { url: string; kind: 'main' | 'gallery' | 'detail'; position: number }[];
  detailUrl: string;
  status: 'active';
  salesCount: number;
}

export function generateProducts(count: number, { seed = 1688, suppliers = 50, imagesPerProduct = 8, offset = 0 } = {}): GeneratedProduct[] {
  const r = rng(seed + offset);
  return Array.from({ length: count }, (_, k) => {
    const i = k + offset;
    const base = Math.round((5 + r() * 200) * 100) / 100;
    const externalId = String(700000000000 + i);
    return {
      externalId,
      supplierExternalId: `b2b-bench-${i % suppliers}`,
      title: generateTitle(r),
      categoryId: String(100000 + (i % 40)),
      categoryPath: ['家居日用', pick(r, NOUNS)],
      priceMin: base,
      priceMax: Math.round(base * 1.3 * 100) / 100,
      currency: 'CNY',
      priceTiers: [
        { minQuantity: 2, price: Math.round(base * 1.3 * 100) / 100 },
        { minQuantity: 100, price: Math.round(base * 1.1 * 100) / 100 },
        { minQuantity: 1000, price: base },
      ],
      moq: 2,
      unit: '件',
      skus: COLORS.slice(0, 3).map((color, s) => ({ externalId: `${externalId}${s}`, attributes: { 颜色: color, 规格: '标准款' }, price: base, stock: Math.floor(r() * 5000) })),
      attributes: { 材质: pick(r, MATERIALS), 产地: pick(r, ORIGINS), 是否支持一件代发: '是' },
      images: Array.from({ length: imagesPerProduct }, (_, p) => ({
        url: `https://cbu01.alicdn.com/img/ibank/O1CN01${createHash('md5').update(`${i}-${p}`).digest('hex').slice(0, 20)}.jpg`,
        kind: p === 0 ? 'main' : p < 5 ? 'gallery' : 'detail',
        position: p,
      })),
      detailUrl: `https://detail.1688.com/offer/${externalId}.html`,
      status: 'active',
      salesCount: Math.floor(r() * 50000),
    };
  });
}
