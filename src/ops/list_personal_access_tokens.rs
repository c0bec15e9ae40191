//! ListPersonalAccessTokens: the organization's tokens, or one user's, in (DateCreated, PersonalAccessTokenId)
//! order. Keyset pagination with `limit + 1` rows: a page costs the same at any depth and in any store size, and a
//! token that exists for the whole walk is returned exactly once whatever is created or deleted meanwhile.
//! Expired tokens are listed until deleted, and the PAT status does not affect this admin API (spec D4).

use serde::Deserialize;

use super::{Ctx, RawJson, check_active_org, resolve_live_user_id, store_error, validate};
use crate::domain::Cursor;
use crate::error::ServiceError;
use crate::pagination::{TokenScope, open_cursor};
use crate::store::SummaryPage;

#[derive(Deserialize, Default, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct Input {
    pub organization_id: Option<String>,
    pub user_id: Option<String>,
    pub next_token: Option<String>,
    pub max_results: Option<i64>,
}

/// The page as the answer's bytes: the stored summaries copied into one buffer with the envelope around them.
pub type Output = RawJson;

/// Bytes of a summary, about (a page's answer is sized once for `limit` of them).
const SUMMARY_BYTES: usize = 400;
const HEAD: &[u8] = b"{\"PersonalAccessTokenSummaries\":[";

pub async fn handle(ctx: &Ctx<'_>, input: Input) -> Result<Output, ServiceError> {
    let org_id = validate::organization_id(&input.organization_id)?;
    let user_ident = match &input.user_id {
        Some(_) => Some(validate::entity_identifier(&input.user_id, "UserId")?),
        None => None,
    };
    let limit = validate::max_results(input.max_results)?;
    let token = validate::next_token(&input.next_token)?;
    let now = ctx.app.clock.now_ms();
    // One read answers a page that has rows: the store reads it only while the organization is Active and the
    // filter is the id of a live user (the usual case: the ids a previous answer gave), which is all the checks
    // below would establish. Anything else (no rows, a name or an address as the filter, a NextToken of another
    // walk) takes the checked path, whose errors and their order are the operation's.
    let quick = Page {
        org_id,
        user_id: user_ident,
        token,
        limit,
        now,
    };
    if let Some(body) = quick.quick(ctx).await? {
        return Ok(body);
    }
    check_active_org(ctx, org_id).await?;
    // The filter is resolved to the canonical user id before it is bound into the NextToken, so a walk started
    // with a username continues with the id and vice versa.
    let user_id = match user_ident {
        Some(ident) => Some(resolve_live_user_id(ctx, org_id, ident).await?),
        None => None,
    };
    let checked = Page {
        user_id: user_id.as_deref(),
        ..quick
    };
    checked.checked(ctx).await
}

/// One page request: the organization, the (canonical, or as given) user filter and the position.
#[derive(Clone, Copy)]
struct Page<'a> {
    org_id: &'a str,
    user_id: Option<&'a str>,
    token: Option<&'a str>,
    limit: usize,
    now: crate::clock::Millis,
}

impl Page<'_> {
    /// The answer when the store gives rows without any check, or `None` when it gives none or the NextToken does
    /// not open here: then the caller checks the organization and the user and asks again.
    async fn quick(&self, ctx: &Ctx<'_>) -> Result<Option<RawJson>, ServiceError> {
        let scope = self.scope(ctx);
        let Ok(after) = open_cursor(&ctx.app.sealer, &scope, self.now, self.token) else {
            return Ok(None);
        };
        let page = self.fetch(ctx, after).await?;
        if page.count == 0 {
            return Ok(None);
        }
        Ok(Some(self.answer(ctx, &scope, page)))
    }

    /// The answer once the organization and the user are checked: an empty page is an answer too.
    async fn checked(&self, ctx: &Ctx<'_>) -> Result<RawJson, ServiceError> {
        let scope = self.scope(ctx);
        let after = open_cursor(&ctx.app.sealer, &scope, self.now, self.token)?;
        let page = self.fetch(ctx, after).await?;
        Ok(self.answer(ctx, &scope, page))
    }

    /// What the NextToken is bound to.
    fn scope<'s>(&'s self, ctx: &'s Ctx<'_>) -> TokenScope<'s> {
        TokenScope {
            operation: "ListPersonalAccessTokens",
            account: &ctx.partition.account,
            region: &ctx.partition.region,
            organization: self.org_id,
            filter: self.user_id.unwrap_or(""),
        }
    }

    /// The page after `after`: the stored summaries copied as they are into the start of the answer, written
    /// once into one buffer.
    async fn fetch(
        &self,
        ctx: &Ctx<'_>,
        after: Option<Cursor>,
    ) -> Result<SummaryPage, ServiceError> {
        let mut body = Vec::with_capacity(HEAD.len() + self.limit * SUMMARY_BYTES + 256);
        body.extend_from_slice(HEAD);
        ctx.app
            .store
            .list_personal_access_token_summaries(
                &ctx.partition,
                self.org_id,
                self.user_id,
                after,
                self.limit,
                body,
            )
            .await
            .map_err(store_error)
    }

    /// The answer around the page: the end of the list and, when more rows follow, the NextToken.
    fn answer(&self, ctx: &Ctx<'_>, scope: &TokenScope<'_>, page: SummaryPage) -> RawJson {
        let mut body = page.body;
        body.push(b']');
        if let (true, Some(last)) = (page.has_more, &page.last) {
            // base64url needs no JSON escaping.
            body.extend_from_slice(b",\"NextToken\":\"");
            ctx.app.sealer.seal_into(scope, last, self.now, &mut body);
            body.push(b'"');
        }
        body.push(b'}');
        RawJson(body)
    }
}
