//! How a finished match moves its players' ratings: Weng-Lin (the `skillratings` crate),
//! which rates free-for-all matches from placings alone, ties included. Pure, so every
//! backend rates the same way.

use skillratings::MultiTeamOutcome;
use skillratings::weng_lin::{WengLinConfig, WengLinRating, weng_lin_multi_team};

/// A player's rating as the algorithm keeps it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Skill {
    /// The estimate (mu).
    pub(crate) mean: f64,
    /// Its uncertainty (sigma).
    pub(crate) deviation: f64,
}

impl Skill {
    /// Where every player starts: Weng-Lin's defaults, 25 ± 25/3.
    pub(crate) fn newcomer() -> Skill {
        let fresh = WengLinRating::new();
        Skill {
            mean: fresh.rating,
            deviation: fresh.uncertainty,
        }
    }

    /// The rating served and ranked by: three deviations below the mean, so a player
    /// rises on the leaderboard as the evidence for their skill grows, not on one match.
    pub(crate) fn conservative(self) -> f64 {
        self.mean - 3.0 * self.deviation
    }
}

/// The players' skills after a match in which each had `placing` (1 is best; equal
/// placings are ties). Returned in the order given. A match of one is no evidence of
/// anything, so it changes nothing.
pub(crate) fn after_match(players: &[(Skill, u32)]) -> Vec<Skill> {
    if players.len() < 2 {
        return players.iter().map(|(skill, _)| *skill).collect();
    }
    // Free-for-all is a match of teams of one.
    let teams: Vec<[WengLinRating; 1]> = players
        .iter()
        .map(|(skill, _)| {
            [WengLinRating {
                rating: skill.mean,
                uncertainty: skill.deviation,
            }]
        })
        .collect();
    let teams_and_placings: Vec<(&[WengLinRating], MultiTeamOutcome)> = teams
        .iter()
        .zip(players)
        .map(|(team, (_, placing))| {
            (
                &team[..],
                MultiTeamOutcome::new(usize::try_from(*placing).unwrap_or(usize::MAX)),
            )
        })
        .collect();
    let rated = weng_lin_multi_team(&teams_and_placings, &WengLinConfig::new());
    rated
        .iter()
        .zip(players)
        .map(|(team, (before, _))| match team.first() {
            Some(after) if after.rating.is_finite() && after.uncertainty.is_finite() => Skill {
                mean: after.rating,
                deviation: after.uncertainty,
            },
            // Not expected from the algorithm; a rating that cannot be stored and
            // compared stays as it was instead.
            _ => *before,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_winner_rises_and_the_loser_falls() {
        let newcomer = Skill::newcomer();
        let after = after_match(&[(newcomer, 1), (newcomer, 2)]);
        assert!(after[0].mean > newcomer.mean, "the winner's skill rises");
        assert!(after[1].mean < newcomer.mean, "the loser's skill falls");
        assert!(
            after[0].conservative() > newcomer.conservative(),
            "the winner's rating rises"
        );
        assert!(
            after
                .iter()
                .all(|skill| skill.deviation < newcomer.deviation),
            "a match makes everyone's skill more certain"
        );
    }

    #[test]
    fn placings_order_the_changes_and_ties_move_equals_alike() {
        let newcomer = Skill::newcomer();
        let after = after_match(&[(newcomer, 1), (newcomer, 2), (newcomer, 2), (newcomer, 4)]);
        assert!(after[0].mean > after[1].mean);
        assert_eq!(after[1], after[2], "a tie between equals moves both alike");
        assert!(after[2].mean > after[3].mean);
    }

    #[test]
    fn beating_a_stronger_player_gains_more_than_beating_a_weaker_one() {
        let newcomer = Skill::newcomer();
        let strong = Skill {
            mean: 35.0,
            deviation: 3.0,
        };
        let weak = Skill {
            mean: 15.0,
            deviation: 3.0,
        };
        let over_strong = after_match(&[(newcomer, 1), (strong, 2)])[0].mean;
        let over_weak = after_match(&[(newcomer, 1), (weak, 2)])[0].mean;
        assert!(over_strong > over_weak);
    }

    #[test]
    fn a_match_alone_changes_nothing() {
        let newcomer = Skill::newcomer();
        assert_eq!(after_match(&[(newcomer, 1)]), vec![newcomer]);
        assert!(after_match(&[]).is_empty());
    }

    #[test]
    fn a_newcomer_is_rated_zero() {
        assert!(Skill::newcomer().conservative().abs() < 1e-9);
    }
}
