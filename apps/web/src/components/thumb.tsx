// An image with its ThumbHash (§12) as the placeholder while it loads, when the API has one.
import { useState } from 'preact/hooks';
import { thumbhashDataUrl } from '../format';

export interface ThumbProps {
  src: string | null | undefined;
  thumbhash?: string | null;
  alt: string;
  width?: number;
  height?: number;
}

export function Thumb({ src, thumbhash, alt, width = 200, height = 200 }: ThumbProps) {
  const [loaded, setLoaded] = useState(false);
  const placeholder = thumbhashDataUrl(thumbhash);
  return (
    <span class="thumb">
      {placeholder && !loaded ? <img class="thumb-placeholder" src={placeholder} alt="" aria-hidden="true" width={width} height={height} /> : null}
      {src ? (
        <img class={loaded ? 'thumb-image loaded' : 'thumb-image'} src={src} alt={alt} width={width} height={height} loading="lazy" decoding="async" onLoad={() => setLoaded(true)} />
      ) : (
        <span class="thumb-empty">no image</span>
      )}
    </span>
  );
}
