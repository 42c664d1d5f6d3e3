//! Vehicles, drivers and shifts: the small reference tables dispatch is built on.
//! Each row type maps one-to-one to its table; the API shapes them into bodies (`api::vehicles`,
//! `api::drivers`). Statuses are the domain enums, stored as their wire text.

use bytes::BytesMut;
use chrono::{DateTime, Utc};
use serde_json::value::RawValue;
use tokio_postgres::types::{to_sql_checked, FromSql, IsNull, ToSql, Type};
use tokio_postgres::{GenericClient, Row};
use uuid::Uuid;

use super::StoreError;
use crate::domain::{DriverStatus, VehicleStatus};

/// A status column is text holding `as_str()`; the table's CHECK lists the same values.
macro_rules! text_enum_sql {
    ($t:ty) => {
        impl ToSql for $t {
            fn to_sql(
                &self,
                ty: &Type,
                out: &mut BytesMut,
            ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
                self.as_str().to_sql(ty, out)
            }

            fn accepts(ty: &Type) -> bool {
                <&str as ToSql>::accepts(ty)
            }

            to_sql_checked!();
        }

        impl<'a> FromSql<'a> for $t {
            fn from_sql(
                ty: &Type,
                raw: &'a [u8],
            ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
                Ok(<&str as FromSql>::from_sql(ty, raw)?.parse()?)
            }

            fn accepts(ty: &Type) -> bool {
                <&str as FromSql>::accepts(ty)
            }
        }
    };
}

pub(crate) use text_enum_sql;

text_enum_sql!(VehicleStatus);
text_enum_sql!(DriverStatus);

#[derive(Debug)]
pub struct Vehicle {
    pub id: Uuid,
    pub external_id: String,
    pub vin: Option<String>,
    pub plate: Option<String>,
    pub make: Option<String>,
    pub model: Option<String>,
    pub year: Option<i32>,
    pub vehicle_type: Option<String>,
    pub status: VehicleStatus,
    /// The jsonb as PostgreSQL prints it, passed through unparsed: PostgreSQL prints numbers
    /// exactly (`1.7976931348623157e308` as 309 digits), and serde_json's default parser can
    /// round such a number past `f64::MAX` and refuse it, which made the row unreadable.
    pub specs: Box<RawValue>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Fields a client may set; `None` leaves a field as it is (or at its default on create).
#[derive(Debug, Default)]
pub struct VehicleFields {
    pub vin: Option<String>,
    pub plate: Option<String>,
    pub make: Option<String>,
    pub model: Option<String>,
    pub year: Option<i32>,
    pub vehicle_type: Option<String>,
    pub status: Option<VehicleStatus>,
    pub specs: Option<serde_json::Value>,
}

impl VehicleFields {
    /// The fields as SQL parameters, in the order both create and update bind them ($2…$9).
    fn params(&self) -> [&(dyn ToSql + Sync); 8] {
        [
            &self.vin,
            &self.plate,
            &self.make,
            &self.model,
            &self.year,
            &self.vehicle_type,
            &self.status,
            &self.specs,
        ]
    }
}

/// `first` followed by the fields: the parameter list of create (external id) and update (id).
fn with_fields<'a>(
    first: &'a (dyn ToSql + Sync),
    f: &'a VehicleFields,
) -> Vec<&'a (dyn ToSql + Sync)> {
    let mut params = vec![first];
    params.extend(f.params());
    params
}

const VEHICLE_COLUMNS: &str =
    "id, external_id, vin, plate, make, model, year, vehicle_type, status, specs::text, created_at, updated_at";

fn vehicle(r: &Row) -> Vehicle {
    Vehicle {
        id: r.get(0),
        external_id: r.get(1),
        vin: r.get(2),
        plate: r.get(3),
        make: r.get(4),
        model: r.get(5),
        year: r.get(6),
        vehicle_type: r.get(7),
        status: r.get(8),
        specs: RawValue::from_string(r.get(9)).expect("jsonb prints JSON"),
        created_at: r.get(10),
        updated_at: r.get(11),
    }
}

pub async fn create_vehicle(
    c: &impl GenericClient,
    external_id: &str,
    f: &VehicleFields,
) -> Result<Vehicle, StoreError> {
    let sql = format!(
        "INSERT INTO vehicles (external_id, vin, plate, make, model, year, vehicle_type, status, specs) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, coalesce($8, 'active'), coalesce($9, '{{}}'::jsonb)) RETURNING {VEHICLE_COLUMNS}"
    );
    let row = c.query_one(&sql, &with_fields(&external_id, f)).await?;
    Ok(vehicle(&row))
}

/// Registers many vehicles in one statement; existing external ids are left alone.
/// Returns how many were new.
pub async fn create_vehicles_bulk(
    c: &impl GenericClient,
    external_ids: &[&str],
    types: &[Option<&str>],
) -> Result<u64, StoreError> {
    Ok(c.execute(
        "INSERT INTO vehicles (external_id, vehicle_type) SELECT * FROM unnest($1::text[], $2::text[]) \
         ON CONFLICT (external_id) DO NOTHING",
        &[&external_ids, &types],
    )
    .await?)
}

pub async fn get_vehicle(c: &impl GenericClient, id: Uuid) -> Result<Option<Vehicle>, StoreError> {
    let sql = format!("SELECT {VEHICLE_COLUMNS} FROM vehicles WHERE id = $1");
    Ok(c.query_opt(&sql, &[&id]).await?.as_ref().map(vehicle))
}

pub async fn update_vehicle(
    c: &impl GenericClient,
    id: Uuid,
    f: &VehicleFields,
) -> Result<Option<Vehicle>, StoreError> {
    let sql = format!(
        "UPDATE vehicles SET vin = coalesce($2, vin), plate = coalesce($3, plate), make = coalesce($4, make), \
         model = coalesce($5, model), year = coalesce($6, year), vehicle_type = coalesce($7, vehicle_type), \
         status = coalesce($8, status), specs = coalesce($9, specs), updated_at = now() \
         WHERE id = $1 RETURNING {VEHICLE_COLUMNS}"
    );
    let row = c.query_opt(&sql, &with_fields(&id, f)).await?;
    Ok(row.as_ref().map(vehicle))
}

/// Keyset pagination by id: stable under concurrent inserts, no OFFSET scans.
pub async fn list_vehicles(
    c: &impl GenericClient,
    status: Option<VehicleStatus>,
    vehicle_type: Option<&str>,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Vehicle>, StoreError> {
    let sql = format!(
        "SELECT {VEHICLE_COLUMNS} FROM vehicles WHERE ($1::text IS NULL OR status = $1) \
         AND ($2::text IS NULL OR vehicle_type = $2) AND ($3::uuid IS NULL OR id > $3) ORDER BY id LIMIT $4"
    );
    Ok(c.query(&sql, &[&status, &vehicle_type, &after, &limit])
        .await?
        .iter()
        .map(vehicle)
        .collect())
}

#[derive(Debug)]
pub struct Driver {
    pub id: Uuid,
    pub name: String,
    pub license_number: Option<String>,
    pub status: DriverStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const DRIVER_COLUMNS: &str = "id, name, license_number, status, created_at, updated_at";

fn driver(r: &Row) -> Driver {
    Driver {
        id: r.get(0),
        name: r.get(1),
        license_number: r.get(2),
        status: r.get(3),
        created_at: r.get(4),
        updated_at: r.get(5),
    }
}

pub async fn create_driver(
    c: &impl GenericClient,
    name: &str,
    license: Option<&str>,
    status: Option<DriverStatus>,
) -> Result<Driver, StoreError> {
    let sql = format!(
        "INSERT INTO drivers (name, license_number, status) VALUES ($1, $2, coalesce($3, 'off_duty')) RETURNING {DRIVER_COLUMNS}"
    );
    Ok(driver(
        &c.query_one(&sql, &[&name, &license, &status]).await?,
    ))
}

pub async fn get_driver(c: &impl GenericClient, id: Uuid) -> Result<Option<Driver>, StoreError> {
    let sql = format!("SELECT {DRIVER_COLUMNS} FROM drivers WHERE id = $1");
    Ok(c.query_opt(&sql, &[&id]).await?.as_ref().map(driver))
}

pub async fn update_driver(
    c: &impl GenericClient,
    id: Uuid,
    name: Option<&str>,
    license: Option<&str>,
    status: Option<DriverStatus>,
) -> Result<Option<Driver>, StoreError> {
    let sql = format!(
        "UPDATE drivers SET name = coalesce($2, name), license_number = coalesce($3, license_number), \
         status = coalesce($4, status), updated_at = now() WHERE id = $1 RETURNING {DRIVER_COLUMNS}"
    );
    Ok(c.query_opt(&sql, &[&id, &name, &license, &status])
        .await?
        .as_ref()
        .map(driver))
}

pub async fn list_drivers(
    c: &impl GenericClient,
    status: Option<DriverStatus>,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Driver>, StoreError> {
    let sql = format!(
        "SELECT {DRIVER_COLUMNS} FROM drivers WHERE ($1::text IS NULL OR status = $1) \
         AND ($2::uuid IS NULL OR id > $2) ORDER BY id LIMIT $3"
    );
    Ok(c.query(&sql, &[&status, &after, &limit])
        .await?
        .iter()
        .map(driver)
        .collect())
}
