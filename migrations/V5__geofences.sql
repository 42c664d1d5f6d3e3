-- Geofences: polygons (kept as the client sent them, Polygon or MultiPolygon, holes allowed) and
-- geodesic circles (centre + radius in metres on WGS84). Polygon edges are straight lines in
-- lon/lat (RFC 7946) and never cross 180°; a fence across it is a MultiPolygon split there.
--
-- `bounds` covers the fence and carries the GiST index every spatial query prefilters with:
-- for a polygon it is the polygon itself; for a circle, one box (two across 180°) slightly larger
-- than the circle, because the exact test (ST_DWithin on geography) cannot use a geometry index.
-- Boundaries count as inside: polygons are tested with ST_Intersects, circles with ST_DWithin.
CREATE TABLE geofences (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    kind       text NOT NULL CHECK (kind IN ('polygon', 'circle')),
    geom       geometry(Geometry, 4326)
               CHECK (ST_GeometryType(geom) IN ('ST_Polygon', 'ST_MultiPolygon') AND ST_IsValid(geom)),
    center     geometry(Point, 4326),
    radius_m   double precision CHECK (radius_m > 0 AND radius_m <= 1000000),
    bounds     geometry(Geometry, 4326) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT geofences_kind_columns CHECK (
        (kind = 'polygon' AND geom IS NOT NULL AND center IS NULL AND radius_m IS NULL)
        OR (kind = 'circle' AND geom IS NULL AND center IS NOT NULL AND radius_m IS NOT NULL)
    )
);
CREATE INDEX geofences_bounds_gist ON geofences USING gist (bounds);
