// Reads a GeoParquet file with the npm geoparquet package and prints, as
// JSON, what it saw (internal/outside's GeoParquet decodes it):
//
//   node read.mjs FILE.parquet
//
//   geo:          the file's "geo" metadata, parsed as toGeoJson parses it
//   geometryType: the logical type hyparquet gives the primary column
//                 from that metadata (GEOMETRY for a WKB column)
//   features:     toGeoJson's features, the package's reading of the file
//   rows:         every row as hyparquet reads it, the primary column
//                 decoded from WKB to a GeoJSON geometry (null where null)
//
// hyparquet-compressors gives it zstd, which the layer is written with.
import { asyncBufferFromFile, toGeoJson } from 'geoparquet';
import { parquetMetadataAsync, parquetReadObjects } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';

const file = await asyncBufferFromFile(process.argv[2]);
const metadata = await parquetMetadataAsync(file);
const kv = metadata.key_value_metadata?.find((e) => e.key === 'geo');
const geo = kv ? JSON.parse(kv.value) : null;
const primary = geo?.primary_column;
const geometryType = metadata.schema.find((e) => e.name === primary)?.logical_type?.type ?? '';

const { features } = await toGeoJson({ file, compressors });
const rows = (await parquetReadObjects({ file, metadata, compressors })).map(
  ({ [primary]: geometry, ...columns }) => ({ geometry, columns }),
);

// INT64 columns come as BigInt, which JSON cannot carry: as a Number, and
// an error rather than a rounded value past 2^53. A null struct comes as
// undefined, which JSON.stringify would drop: as null.
const json = JSON.stringify({ geo, geometryType, features, rows }, (_, v) => {
  if (typeof v === 'bigint') {
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
      throw new Error(`an INT64 of ${v} is past what a JSON number carries exactly`);
    }
    return Number(v);
  }
  return v === undefined ? null : v;
});
process.stdout.write(json);
