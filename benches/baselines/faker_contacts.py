"""The seed's generator: contacts made row by row with Faker, written as CSV.

Usage: faker_contacts.py ROWS OUT.csv DS
"""

import csv
import random
import sys
import uuid
from datetime import datetime, timedelta

from faker import Faker

LEAD_SOURCES = ["organic_search", "paid_search", "paid_social", "email", "web", "referral", "event"]
INDUSTRIES = ["Software", "Finance", "Healthcare", "Retail", "Manufacturing", "Education"]


def main() -> None:
    rows, out, ds = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    fake = Faker()
    Faker.seed(7)
    random.seed(7)
    day = datetime.fromisoformat(ds)
    with open(out, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(
            [
                "contact_id",
                "first_name",
                "last_name",
                "email",
                "company",
                "industry",
                "lead_source",
                "job_title",
                "country",
                "opted_in",
                "signup_date",
            ]
        )
        for _ in range(rows):
            first, last = fake.first_name(), fake.last_name()
            writer.writerow(
                [
                    str(uuid.uuid4()),
                    first,
                    last,
                    f"{first}.{last}@{fake.free_email_domain()}".lower(),
                    fake.company(),
                    random.choice(INDUSTRIES),
                    random.choice(LEAD_SOURCES),
                    fake.job(),
                    fake.country(),
                    random.choice(["true", "false"]),
                    (day + timedelta(seconds=random.randrange(86_400))).isoformat(),
                ]
            )
    print(rows)


if __name__ == "__main__":
    main()
