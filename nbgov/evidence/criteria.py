"""The SOC 2 Trust Services Criteria nbgov's evidence speaks to (AICPA Trust Services Criteria
2017, revised points of focus 2022): each criterion's id, category, nbgov's short title and the
criterion's text. :mod:`nbgov.evidence.controls` maps nbgov's controls onto them.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CRITERIA", "Criterion"]


@dataclass(frozen=True)
class Criterion:
    """A Trust Services Criterion: its id, category, a short title and the criterion's text."""

    id: str
    category: str
    title: str
    text: str


def _criteria(category: str, *entries: tuple[str, str, str]) -> list[Criterion]:
    return [Criterion(id_, category, title, text) for id_, title, text in entries]


CRITERIA: tuple[Criterion, ...] = tuple(
    _criteria("Risk Assessment",
                ("CC3.1", "Objectives clear enough to assess risk",
                 "The entity specifies objectives with sufficient clarity to enable the identification and"
                 " assessment of risks relating to objectives."),
                ("CC3.2", "Risk identification and analysis",
                 "The entity identifies risks to the achievement of its objectives across the entity and "
                 "analyzes risks as a basis for determining how the risks should be managed."),
                ("CC3.3", "Fraud risk",
                 "The entity considers the potential for fraud in assessing risks to the achievement of "
                 "objectives."),
                ("CC3.4", "Changes that affect internal control",
                 "The entity identifies and assesses changes that could significantly impact the system of"
                 " internal control."))
    + _criteria("Logical and Physical Access Controls",
                ("CC6.1", "Logical access security",
                 "The entity implements logical access security software, infrastructure, and "
                 "architectures over protected information assets to protect them from security events to "
                 "meet the entity's objectives."),
                ("CC6.2", "User registration and authorization",
                 "Prior to issuing system credentials and granting system access, the entity registers and"
                 " authorizes new internal and external users whose access is administered by the entity. "
                 "For those users whose access is administered by the entity, user system credentials are "
                 "removed when user access is no longer authorized."),
                ("CC6.3", "Role-based access and segregation of duties",
                 "The entity authorizes, modifies, or removes access to data, software, functions, and "
                 "other protected information assets based on roles, responsibilities, or the system "
                 "design and changes, giving consideration to the concepts of least privilege and "
                 "segregation of duties, to meet the entity's objectives."),
                ("CC6.4", "Physical access",
                 "The entity restricts physical access to facilities and protected information assets (for"
                 " example, data center facilities, back-up media storage, and other sensitive locations) "
                 "to authorized personnel to meet the entity's objectives."),
                ("CC6.5", "Disposal of physical assets",
                 "The entity discontinues logical and physical protections over physical assets only after"
                 " the ability to read or recover data and software from those assets has been diminished "
                 "and is no longer required to meet the entity's objectives."),
                ("CC6.6", "Threats from outside the system",
                 "The entity implements logical access security measures to protect against threats from "
                 "sources outside its system boundaries."),
                ("CC6.7", "Transmission and movement of information",
                 "The entity restricts the transmission, movement, and removal of information to "
                 "authorized internal and external users and processes, and protects it during "
                 "transmission, movement, or removal to meet the entity's objectives."),
                ("CC6.8", "Unauthorized or malicious software",
                 "The entity implements controls to prevent or detect and act upon the introduction of "
                 "unauthorized or malicious software to meet the entity's objectives."))
    + _criteria("System Operations",
                ("CC7.2", "Monitoring of system components",
                 "The entity monitors system components and the operation of those components for "
                 "anomalies that are indicative of malicious acts, natural disasters, and errors affecting"
                 " the entity's ability to meet its objectives; anomalies are analyzed to determine "
                 "whether they represent security events."))
    + _criteria("Change Management",
                ("CC8.1", "Change management",
                 "The entity authorizes, designs, develops or acquires, configures, documents, tests, "
                 "approves, and implements changes to infrastructure, data, software, and procedures to "
                 "meet its objectives."))
    + _criteria("Risk Mitigation",
                ("CC9.2", "Vendor and business partner risk",
                 "The entity assesses and manages risks associated with vendors and business partners."))
    + _criteria("Processing Integrity",
                ("PI1.1", "Processing specifications",
                 "The entity obtains or generates, uses, and communicates relevant, quality information "
                 "regarding the objectives related to processing, including definitions of data processed "
                 "and product and service specifications, to support the use of products and services."),
                ("PI1.2", "System inputs",
                 "The entity implements policies and procedures over system inputs, including controls "
                 "over completeness and accuracy, to result in products, services, and reporting to meet "
                 "the entity's objectives."),
                ("PI1.3", "System processing",
                 "The entity implements policies and procedures over system processing to result in "
                 "products, services, and reporting to meet the entity's objectives."),
                ("PI1.4", "System outputs",
                 "The entity implements policies and procedures to make available or deliver output "
                 "completely, accurately, and timely in accordance with specifications to meet the "
                 "entity's objectives."),
                ("PI1.5", "Storage of inputs and outputs",
                 "The entity implements policies and procedures to store inputs, items in processing, and "
                 "outputs completely, accurately, and timely in accordance with system specifications to "
                 "meet the entity's objectives."))
    + _criteria("Confidentiality",
                ("C1.1", "Confidential information identified and protected",
                 "The entity identifies and maintains confidential information to meet the entity's "
                 "objectives related to confidentiality."),
                ("C1.2", "Disposal of confidential information",
                 "The entity disposes of confidential information to meet the entity's objectives related "
                 "to confidentiality.")))
