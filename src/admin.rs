//! Admin commands run from the shell (`meridian apikey …`), against the same store the API uses.

use crate::cli::ApiKeyCommand;
use crate::store::{self, api_keys, migrate};

pub async fn apikey(database_url: &str, command: ApiKeyCommand) -> anyhow::Result<()> {
    let mut client = store::connect(database_url).await?;
    migrate::run(&mut client).await?;
    match command {
        ApiKeyCommand::Create { role, name } => {
            let (key, secret) = api_keys::create(&client, &name, role).await?;
            eprintln!(
                "created api key {:?} (role {}, id {}); store it now, it is not shown again:",
                key.name, key.role, key.id
            );
            println!("{secret}");
        }
        ApiKeyCommand::List => {
            println!(
                "{:<36}  {:<10}  {:<12}  {:<20}  {:<20}  name",
                "id", "role", "prefix", "created", "revoked"
            );
            for k in api_keys::list(&client).await? {
                let revoked = k
                    .revoked_at
                    .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                    .unwrap_or_else(|| "-".into());
                println!(
                    "{:<36}  {:<10}  {:<12}  {:<20}  {:<20}  {}",
                    k.id,
                    k.role,
                    k.key_prefix,
                    k.created_at.format("%Y-%m-%d %H:%M:%S"),
                    revoked,
                    k.name
                );
            }
        }
        ApiKeyCommand::Revoke { id } => {
            if !api_keys::revoke(&client, id).await? {
                anyhow::bail!("no active api key with id {id}");
            }
            eprintln!("revoked api key {id}");
        }
    }
    Ok(())
}
